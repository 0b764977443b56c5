"""Exporting a model for other runtimes (ONNX Runtime, and through ONNX TensorRT or OpenVINO)."""
