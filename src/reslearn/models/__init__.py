"""The paper's networks: blocks and shortcut options, the CIFAR and ImageNet families, the
name -> builder registry, and complexity measurement."""

from reslearn.models.blocks import SHORTCUT_OPTIONS, BasicBlock, Bottleneck, ZeroPadShortcut
from reslearn.models.complexity import (
    ModelProfile,
    StageProfile,
    count_macs,
    count_parameters,
    profile_model,
    stage_profiles,
)
from reslearn.models.families import cifar_resnet, imagenet_resnet
from reslearn.models.registry import (
    MODEL_OPTIONS,
    ModelInfo,
    create_model,
    list_models,
    model_info,
    register_model,
)
from reslearn.models.resnet import ResNet

__all__ = [
    "MODEL_OPTIONS",
    "SHORTCUT_OPTIONS",
    "BasicBlock",
    "Bottleneck",
    "ModelInfo",
    "ModelProfile",
    "ResNet",
    "StageProfile",
    "ZeroPadShortcut",
    "cifar_resnet",
    "count_macs",
    "count_parameters",
    "create_model",
    "imagenet_resnet",
    "list_models",
    "model_info",
    "profile_model",
    "register_model",
    "stage_profiles",
]
