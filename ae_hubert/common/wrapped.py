"""The model inside fairseq's distributed / proxy wrappers (they keep it under ``.module``)."""


def unwrap(model):
    while hasattr(model, "module"):
        model = model.module
    return model
