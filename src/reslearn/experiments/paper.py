"""The paper's own numbers that the experiments are compared with (He et al. 2016)."""

from __future__ import annotations

#: CIFAR-10 recipe (Sec. 4.2): 64k iterations at batch 128.
PAPER_ITERATIONS = 64_000

#: Table 6: CIFAR-10 test error (%) and parameters (millions) by ResNet depth (one run each,
#: except 110: best of 5, with the mean and std of the 5 runs below).
TABLE6 = {
    20: (8.75, 0.27),
    32: (7.51, 0.46),
    44: (7.17, 0.66),
    56: (6.97, 0.85),
    110: (6.43, 1.7),
    1202: (7.93, 19.4),
}
TABLE6_RESNET110_MEAN_STD = (6.61, 0.16)

#: Table 3, ImageNet val top-1 / top-5 error (%) with 10-crop testing, ResNet-34 by shortcut
#: option. On ImageNet, not CIFAR: shown as the direction to expect, not as a target.
TABLE3_RESNET34 = {"A": (25.03, 7.76), "B": (24.52, 7.46), "C": (24.19, 7.40)}

#: The best multi-seed PyTorch reproduction of the paper's CIFAR-10 recipe that we compare with
#: (as issue 35 quotes it): test error (%) as (mean, std) over 5 runs per network.
PYTORCH_REPRODUCTION = {
    "resnet20": (8.51, 0.22),
    "resnet56": (7.40, 0.27),
    "plain20": (9.78, 0.13),
    "plain56": (12.95, 0.22),
}
PYTORCH_REPRODUCTION_RUNS = 5

FIG6 = (
    "Fig. 6: the deeper plain network has the higher training and test error (the degradation "
    "problem); ResNets of the same depths get better with depth. Plain-110 stays above 60% error."
)
FIG7 = (
    "Fig. 7: ResNets' 3x3 layers respond less (smaller std) than their plain counterparts, and "
    "the deeper the ResNet, the smaller its individual responses."
)

#: Li, Xu, Taylor, Studer and Goldstein 2018, "Visualizing the loss landscape of neural nets",
#: Fig. 5 (CIFAR-10, filter-normalised 2-D surfaces): each network's test error (%) and what its
#: landscape looks like; the plain networks are their ResNets without shortcuts ("noshort").
LANDSCAPE_FIG5 = {
    "resnet20": (7.37, "convex, like plain-20's"),
    "plain20": (8.18, "convex, like ResNet-20's"),
    "resnet56": (5.89, "a wide, convex basin"),
    "plain56": (13.31, "chaotic and non-convex"),
    "resnet110": (5.79, "a wide, convex basin"),
    "plain110": (16.44, "chaotic and non-convex"),
}
LANDSCAPE_SHAPES = (
    "Li et al. 2018, Fig. 5: without shortcuts the landscape turns chaotic and non-convex as the "
    "network deepens (plain-56), while ResNet-56 keeps a wide, convex basin around its trained "
    "weights; at 20 layers the two look alike."
)

#: Veit, Wilber and Belongie 2016, "Residual networks behave like ensembles of relatively
#: shallow networks" (CIFAR-10, ResNet-110 with 54 blocks; VGG as the plain network): what a
#: lesion does. Error rates (%) read off their Fig. 3 and 5; the report shows ours beside them.
LESION = {
    "network": "ResNet-110 (54 residual blocks), CIFAR-10",
    "single_block": "deleting any single block leaves the test error almost unchanged, except "
    "a downsampling block (Fig. 3: about 1 point of change for most blocks)",
    "plain": "deleting any single layer of a plain network (VGG) sends it to chance: about 90% "
    "error on CIFAR-10's 10 classes",
    "plain_error": 90.0,
    "k_curve": "deleting k random blocks at once raises the error smoothly with k (Fig. 5a: about "
    "20% error at k = 10, 50% near k = 20)",
}

#: The gradient studies: De and Smith 2020, "Batch normalization biases residual blocks towards
#: the identity function in deep networks", and Veit et al. 2016, Sec. 6 (ResNet-110).
GRADIENTS = {
    "branch_ratio": "at initialisation batch norm shrinks the residual branch against the "
    "shortcut by about the square root of the depth: std(F(x)) / std(x) ~ 1/sqrt(l) at the l-th "
    "block (De and Smith 2020)",
    "path_decay": "the gradient through a path falls exponentially with the number k of "
    "residual branches it goes through (Veit et al., Fig. 6b)",
    "path_window": (5, 17),  # ResNet-110: the path lengths that carry almost all the gradient
    "path_blocks": 54,
    "path_window_text": "for ResNet-110 almost all of the gradient comes from paths through 5 to "
    "17 of its 54 blocks, a small fraction of all 2^54 paths (Veit et al., Fig. 6c)",
}
