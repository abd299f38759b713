# Set-up and the main jobs. `make venv` builds .venv with everything; `make demo` and `make test` use it.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Real datasets (read-only) live beside the project; override to point elsewhere.
export IMGCLF_DATA_DIR ?= $(abspath $(CURDIR)/../shared/data)
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: venv tritonclient-venv serving-requirements demo examples serve browser monitoring-tools lint test bench load-tools soak fuzz clean

venv: $(VENV)/.installed

# Everything: the core and every extra (serve, serve-tf, train, test), and the client SDK.
$(VENV)/.installed: pyproject.toml constraints.txt clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[serve,serve-tf,train,test]" -e ./clients/python
	touch $@

# A virtual environment with tritonclient and nothing of this project, which the Triton-client tests
# run in (tritonclient needs protobuf < 7; the project runs protobuf 7).
tritonclient-venv: .venv-tritonclient/.installed

.venv-tritonclient/.installed: tests/clients/tritonclient-requirements.txt
	$(PYTHON) -m venv .venv-tritonclient
	.venv-tritonclient/bin/pip install --quiet -r tests/clients/tritonclient-requirements.txt
	touch $@

# serving/requirements.txt (what a bento installs): the core and the `serve` extra, resolved at
# constraints.txt's pins in a scratch venv.
serving-requirements:
	rm -rf build/serve-venv && $(PYTHON) -m venv build/serve-venv
	build/serve-venv/bin/pip install --quiet -c constraints.txt ".[serve]"
	(sed -n '1,3p' serving/requirements.txt; build/serve-venv/bin/pip freeze --exclude imgclf) > build/requirements.txt
	mv build/requirements.txt serving/requirements.txt && rm -rf build/serve-venv

demo: venv
	$(BIN)/python -m training list
	$(BIN)/python -m training train demo --preset recommended --quiet
	@$(BIN)/python -c "from sklearn.datasets import load_digits; from PIL import Image; Image.fromarray((load_digits().images[0] * 15).astype('uint8')).save('runs/digit.png')"
	@echo ""
	@echo "Serving the demo model (Ctrl-C stops it). Try, from another terminal:"
	@$(MAKE) --no-print-directory examples
	@echo ""
	IMGCLF_MODELS=digits-cnn $(BIN)/bentoml serve serving.service:Classifier --port 3000

# The examples `make demo` prints (imgclf's API, TF Serving's and v2 over curl, grpcurl, the CLI, the SDK, the page); the README's tour
# shows the same lines, and tests/serving/test_examples.py runs each against a server.
examples:
	@echo "  curl -F image=@runs/digit.png http://localhost:3000/classify"
	@echo "  curl http://localhost:3000/models"
	@echo "  curl -d '{\"signature_name\": \"classify\", \"instances\": [{\"b64\": \"'\$$(base64 -w0 runs/digit.png)'\"}]}' http://localhost:3000/v1/models/digits-cnn:predict"
	@echo "  curl -d '{\"inputs\": [{\"name\": \"images\", \"datatype\": \"BYTES\", \"shape\": [1], \"data\": [\"'\$$(base64 -w0 runs/digit.png)'\"]}], \"outputs\": [{\"name\": \"probabilities\", \"parameters\": {\"classification\": 3}}]}' http://localhost:3000/v2/models/digits-cnn/infer"
	@echo "  $(BIN)/grpcurl -plaintext -d '{\"images\": [\"'\$$(base64 -w0 runs/digit.png)'\"]}' localhost:50051 imgclf.v1.ClassifierService/Classify"
	@echo "  $(BIN)/imgclf classify runs/digit.png --url http://localhost:3000"
	@echo "  $(BIN)/imgclf classify runs/digit.png --grpc localhost:50051 --json"
	@echo "  $(BIN)/imgclf models"
	@echo "  $(BIN)/python -c \"from imgclf_client import GrpcClient; print(GrpcClient('localhost:50051').classify('runs/digit.png').top[0])\""
	@echo "  # the browser page: http://localhost:3000/ui"

serve: venv
	$(BIN)/bentoml serve serving.service:Classifier --port 3000

# The browser-page test drives Debian's chromium through chromedriver.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver)

# ruff's lint and format check (configuration in pyproject.toml); `make test` runs it first.
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# promtool (Debian's prometheus package) checks and unit-tests deploy/monitoring/alerts.yaml in the suite.
monitoring-tools:
	@command -v promtool >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus)

test: venv tritonclient-venv browser monitoring-tools lint
	$(BIN)/python -m pytest

load-tools:
	@command -v wrk >/dev/null && command -v h2load >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk nghttp2-client)

bench: venv load-tools
	$(BIN)/python benchmarks/training_throughput.py
	$(BIN)/python benchmarks/serving_load.py

# 10 minutes at concurrency 32 (HTTP + gRPC) against the task1 model in the BentoML store.
soak: venv load-tools
	$(BIN)/python benchmarks/soak.py --model tinyimagenet-cnn

# Coverage-guided fuzzing (atheris) of every decoder the server runs on untrusted bytes: six harnesses,
# 100 s each (10 minutes), each from its committed corpus (tests/fuzz/); findings land in build/fuzz/.
fuzz: venv
	$(BIN)/python -m tests.fuzz.run --seconds 100

clean:
	rm -rf $(VENV) .venv-tritonclient runs .pytest_cache
