"""What a protocol means apart from its transport: the Open Inference Protocol's tensors, inputs,
outputs, classification and metadata, which its HTTP routes and its gRPC servicer share."""
