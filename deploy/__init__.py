"""Deployment: ONNX export (onnxexport.exportOnnx) and import (onnximport.importOnnx), and post-training FP16/INT8
quantisation. The ONNX parts need the onnx extra (pip install macrobatch[onnx]), imported only when used."""
