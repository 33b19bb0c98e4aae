"""The compiled selection loops (velox/_kernels.c); everything else is in pyproject.toml.

The extension is optional: where it cannot be built (no C compiler), the install goes on and
`velox.kernels` falls back to the numpy implementations.
"""

from setuptools import Extension, setup  # type: ignore[import-untyped]

setup(
    ext_modules=[
        Extension("velox._kernels", ["velox/_kernels.c"], optional=True, extra_compile_args=["-O3"])
    ]
)
