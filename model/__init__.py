"""The lecture's neural network in NumPy: layers, backpropagation, training, storage.

Import the pieces from their modules (`model.network`, `model.classifier`,
`model.serialize`, `model.train`, `model.trace`); this package module stays empty so
that serving code importing `model.network` never pulls in training-only dependencies.
"""
