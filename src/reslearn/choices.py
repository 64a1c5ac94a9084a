"""The values the command line offers (``choices=`` and defaults), in a module that imports
nothing, so that ``reslearn --help`` and a usage error answer without loading torch (issue 18).

Each value's owner imports it from here (``reslearn.device.DEVICES`` is ``DEVICES``,
``reslearn.export.FORMATS`` is ``EXPORT_FORMATS``), so the library keeps one definition.
``MODEL_NAMES`` and ``EXPERIMENTS`` mirror registries that cannot be read without torch;
tests/test_cli_startup.py fails when they drift.
"""

from __future__ import annotations

#: --device; ``reslearn.device.resolve_device`` turns one into a torch.device.
DEVICES = ("auto", "cpu", "cuda")

#: Where ``reslearn reproduce`` trains its runs: here in turn, as processes, or as SLURM jobs.
LAUNCHERS = ("inline", "local", "slurm")
#: The concrete precisions, the one list of their names: what ``auto`` chooses among and what a
#: network runs in, in the order a tie is decided (``reslearn.precision.setting.pick``).
PREFERRED_PRECISIONS = ("fp32", "bf16", "fp16")
CONCRETE_PRECISIONS = tuple(sorted(PREFERRED_PRECISIONS))  # in alphabetical order, as printed
#: --precision; ``auto`` measures (see ``reslearn.precision``).
PRECISIONS = ("auto", *CONCRETE_PRECISIONS)
#: On a CPU, inference runs best in batches of at most this many images: a larger batch's
#: activations leave the caches (resnet20 on a 2-core AMD EPYC, BN folded: 3,450 img/s at 64
#: against 2,190 at 500 in fp32; docs/speed.md). ``reslearn.evaluate.inference_batch`` uses it.
CPU_INFERENCE_BATCH = 64
#: The inference batch on a GPU, where larger batches keep it busy.
GPU_INFERENCE_BATCH = 500

#: Input normalisation (``reslearn.data.normalize``).
NORMALIZATIONS = ("per-pixel", "per-channel", "imagenet")
#: How training reads the data: decoded once into memory, or streamed by DataLoader workers.
LOADERS = ("memory", "stream")
#: Where streamed JPEGs are decoded.
DECODES = ("auto", "workers", "device")
#: The paper's ImageNet test views (``reslearn.data.stream_eval``).
VIEWS = ("center", "10crop", "multiscale")
#: The multiscale view's shorter sides, as in the paper (``reslearn.data.imagenet_views``).
MULTISCALE_SIDES = (224, 256, 384, 480, 640)

#: Up-sampling modes of class activation maps (``reslearn.analysis.upsample``).
INTERPOLATIONS = ("nearest", "bilinear", "bicubic")
#: How a shifted image's border is filled (``reslearn.analysis.shift``).
SHIFT_MODES = ("circular", "zero")

#: ``reslearn.export``'s formats and the file suffix that selects each.
EXPORT_FORMATS = ("onnx", "torchscript", "exported-program")
EXPORT_SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt", "exported-program": ".pt2"}

#: akamaster's CIFAR-10 ResNets (``reslearn.hub.akamaster``): their repository and published
#: files; the 8 hex digits are the start of each file's sha256.
AKAMASTER_REPOSITORY = "akamaster/pytorch_resnet_cifar10"
AKAMASTER_FILES = {
    "resnet20": "resnet20-12fca82f.th",
    "resnet32": "resnet32-d509ac18.th",
    "resnet44": "resnet44-014dd654.th",
    "resnet56": "resnet56-4bfd9763.th",
    "resnet110": "resnet110-1d1ed7c2.th",
    "resnet1202": "resnet1202-f3b1deed.th",
}

#: ``reslearn.models.list_models()``, in its order.
MODEL_NAMES = (
    "resnet20", "plain20", "resnet32", "plain32", "resnet44", "plain44", "resnet56", "plain56",
    "resnet110", "plain110", "resnet1202", "resnet18", "plain18", "resnet34", "plain34",
    "resnet50", "resnet101", "resnet152",
)  # fmt: skip

#: ``reslearn reproduce --budget``: named (recipe, iterations) presets, and what each differs in
#: from the paper (the report's budget box says it). ``laptop`` is the one recipe and length for
#: every network at which a 2-core CPU decides the CIFAR claims: measured on one seed so far
#: (ResNet-20 15.8% < ResNet-56 14.5% test error at 10 epochs, the depth ordering restored; at
#: 2,000 paper iterations it was not), its three-seed decision in docs/reproducing.md.
BUDGETS = {
    "paper": {
        "recipe": "paper",
        "iterations": 64_000,
        "differs": "nothing: Sec. 4.2 exactly (64,000 iterations at batch 128, lr 0.1 divided "
        "by 10 at 32k and 48k, weight decay 1e-4); hours per network on a CPU, a GPU's budget",
    },
    "laptop": {
        "recipe": "fast",
        "iterations": 3_900,
        "differs": "3,900 iterations (10 epochs at batch 128) instead of 64,000, with the fast "
        "recipe (one-cycle to lr 0.2, Nesterov momentum, weight decay 5e-4, label smoothing "
        "0.1) instead of the paper's step schedule; every network gets the same recipe, so "
        "the comparisons between architectures are fair, the errors a few points higher",
    },
}

#: ``reslearn.experiments.EXPERIMENTS``: each experiment's name and description, in its order.
EXPERIMENTS = {
    "cifar": "the paper's CIFAR-10 section over one pool of runs: plain and residual nets at "
    "depths 20, 32, 44, 56 (--depths) and ResNet-20 with shortcuts B and C, over --seeds (0 1 "
    "2); Fig. 6, Table 6, Fig. 7 and the shortcut comparison, each claim decided with a 95% "
    "interval over seeds",
    "degradation": "plain and residual CIFAR networks at depths 20, 32, 44, 56 (--depths), same "
    "recipe and seed; Fig. 6's curves, final training and test errors",
    "table6": "resnet20/32/44/56/110 (--depths; 1202 optional) over --seeds (0 1 2), mean ± std "
    "of the test error beside Table 6; --val-split 5000 gives the paper's 45k/5k split",
    "responses": "std of every 3x3 layer's response (after BN, before the addition and ReLU) on "
    "the test set for plain20/56 and resnet20/56/110 (--models), trained here or given with "
    "--weights NAME=FILE or NAME=reslearn:NAME",
    "shortcuts": "ResNet-20 (--depths) with shortcut options A, B and C: test error and "
    "parameters side by side",
    "antialias": "ResNet-20 (--depths) trained with and without BlurPool before every "
    "subsampling; test error, shift consistency and accuracy against shift side by side",
    "pooling": "ResNet-20 (--depths) with global average pooling (the paper's), global max "
    "pooling, or no pooling before the classifier; test error, parameters, shift consistency "
    "and whether CAM applies",
    "landscape": "training loss along random filter-normalised directions (Li et al. 2018), 1-D "
    "(51 points) and 2-D (--grid N, 21; the paper's 51) on a seeded --subset of the training "
    "images (2000), for plain20/56 and resnet20/56 (--models), trained here or given with "
    "--weights NAME=FILE or NAME=reslearn:NAME",
    "lesion": "test error with each single block deleted (y = shortcut(x); a plain block: y = x) "
    "and with k random blocks deleted at once (k = 1..n/2, 5 draws), BN statistics as trained "
    "(Veit et al. 2016), for resnet20/32/44/56 and plain20/56 (--models) on the test set "
    "(--max-images N: a sample), trained here or given with --weights NAME=FILE or "
    "NAME=reslearn:NAME",
    "gradients": "std(F(x))/std(x) of each residual block at initialisation and trained beside "
    "1/sqrt(l) (De and Smith 2020), the gradient norm at every layer, and on the deepest ResNet "
    "the gradient through paths of k residual branches (Veit et al. 2016), for resnet20/32/44/56 "
    "and plain20/56 (--models) on a sample of 128 test images (--max-images), trained here or "
    "given with --weights NAME=FILE or NAME=reslearn:NAME",
}
