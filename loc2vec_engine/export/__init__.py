"""Export a trained encoder to ONNX with its loc2vec metadata, and read such files back.

``onnx.export_onnx`` needs torch and onnx; ``runtime.read_onnx_meta`` and ``runtime.onnx_session``
need only onnxruntime (the QGIS plugin embeds with those), so nothing is imported here eagerly.
"""
