"""What a trained model carries to wherever it runs: its contract (`contract`: tensor and signature
names, top-k, the store module) and the one image decode and bilinear resize (`preprocessing`).

Training and serving both import it; it imports nothing else of training and no TensorFlow, so
the bento takes this package whole (and none of the rest of training/).
"""
