"""Training, export and fine-tuning: the only package that imports TensorFlow/Keras.

The backend and TensorFlow's log level are set here, before any module of the package imports Keras.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
