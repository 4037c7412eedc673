def pair(*args, **kwargs):  # placeholder, replaced by the pairing implementation
    raise NotImplementedError


def check(*args, **kwargs):  # placeholder
    raise NotImplementedError
