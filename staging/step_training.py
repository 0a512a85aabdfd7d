"""placeholder"""


def run(ctx):
    raise NotImplementedError
