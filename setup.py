"""Packages the project so Beam workers (Dataflow, Flink, Spark) receive it with --setup_file.

The dependency list lives in pyproject.toml; workers run the pipeline image, which has it installed.
"""
import setuptools

setuptools.setup(
    name="sid-ranking",
    version="0.1.0",
    packages=setuptools.find_packages(
        include=["pipeline*", "components*", "formats*", "models*", "schemas*", "serving*"]),
    package_data={"schemas": ["*/schema.pbtxt"]},
    python_requires=">=3.11,<3.12",
)
