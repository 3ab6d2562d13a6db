"""Model capture (torch.fx / torch.export) and the converter registry that lowers it to IR."""
