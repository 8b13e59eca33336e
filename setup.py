"""ae_hubert: a fairseq plugin (user dir) for studying the autoencoder behaviour of HuBERT."""
from setuptools import find_packages, setup

setup(
    name="ae_hubert",
    version="0.1.0",
    description="fairseq plugin for HuBERT iterations, layer-wise analysis and layer-reset fine-tuning",
    packages=find_packages(include=["ae_hubert", "ae_hubert.*"]),
    package_data={"ae_hubert": ["config/**/*.yaml"]},
    include_package_data=True,
    python_requires=">=3.10",
    entry_points={"console_scripts": ["ae-hubert = ae_hubert.cli:main"]},
)
