"""Model: placeholder while the engine is being written (replaced in the next commit)."""


class Model:
    def __init__(self, solver, reader_params, opt_params):
        self.solver, self.reader_params, self.opt_params = solver, reader_params, opt_params
