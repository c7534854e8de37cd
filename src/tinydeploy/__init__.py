"""tinydeploy: quantized ONNX and llama2.c models to self-contained C for microcontrollers."""

__version__ = "0.1.0"
