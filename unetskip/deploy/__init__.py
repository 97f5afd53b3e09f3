"""A trained checkpoint put to use outside training: the checkpoint alone as a model, its ONNX export,
and the demo web page."""
