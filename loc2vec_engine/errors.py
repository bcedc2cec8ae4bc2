"""The one error type users see: a problem and the fix, without a traceback."""


class Loc2VecError(Exception):
    """A user-facing failure: ``problem`` says what is wrong, ``fix`` what to do about it."""

    def __init__(self, problem: str, fix: str = ""):
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem}\n  fix: {fix}" if fix else problem)
