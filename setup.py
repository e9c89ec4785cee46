from setuptools import find_packages, setup

setup(
    name="pipelines",
    version="0.1.0",
    description="Spark-native failure prediction and clinical-data pipelines on BigDL",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["pipelines", "pipelines.*", "jobs"]),
    # The project's BigDL module, built from jvm/ by infra/install.sh before the package is installed or packed.
    package_data={"pipelines": ["jars/*.jar"]},
    install_requires=["pyspark>=3.5,<3.6", "numpy<2", "pandas", "pyarrow", "PyYAML"],
)
