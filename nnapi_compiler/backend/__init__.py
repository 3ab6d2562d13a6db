"""Serialization to the runtime's ser_model format and TorchScript artifact emission."""
