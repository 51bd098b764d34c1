"""Build of the optional C accelerator ``mobileha._slbio`` (batched socket I/O of the SLB
and the registration sockets, and the HA-HA sync record codec).

Everything else is in pyproject.toml. ``optional=True``: where no C compiler or Python
headers are found the install still succeeds and the Python implementations are used.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "mobileha._slbio",
            ["src/mobileha/_slbio.c"],
            optional=True,
            extra_compile_args=["-O2", "-Wall"],
        )
    ]
)
