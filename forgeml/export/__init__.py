"""Export a bundle's torch network as ONNX, TorchScript or safetensors, verified against eager PyTorch."""
