"""
Export a torchvision Faster R-CNN (ResNet-18-FPN backbone, FrozenBatchNorm2d, random weights, fixed
seed) with torch.onnx.export, as a detection engineer would: the RPN (anchors, top-k, NMS per level),
MultiScaleRoIAlign, the RoI heads' TwoMLPHead and FastRCNNPredictor (Gemm on flattened RoI
features), box decoding and the final batched NMS are all in the graph. A small image (128x128 via
min_size / max_size) and few proposals keep the export and the run short.

usage: python3 torchvision_fasterrcnn.py OUT_DIR
writes OUT_DIR/fasterrcnn.onnx, OUT_DIR/input.npy (3x128x128 uniform [0,1), the one image the model
takes), OUT_DIR/meta.json (torch and torchvision versions, output names, the eager outputs' shapes),
and OUT_DIR/maskrcnn.onnx: the same detector with Mask R-CNN's mask branch (a second RoIAlign, 2 convs
64 wide, the ConvTranspose and the 1x1 mask logits) and a fourth output, masks.
"""
import json
import os
import sys

import numpy as np
import torch
import torchvision
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FasterRCNN, FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNN, MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import misc as misc_nn_ops
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

out = sys.argv[1]
os.makedirs(out, exist_ok=True)


def backbone():
    # the backbone as torchvision's fasterrcnn_resnet50_fpn builds it (FrozenBatchNorm2d, FPN on C2..C5,
    # a max-pooled P6 for the RPN), with ResNet-18 and an FPN 64 wide instead of 256 so the graph stays small
    body = torchvision.models.resnet18(weights=None, norm_layer=misc_nn_ops.FrozenBatchNorm2d)
    # FrozenBatchNorm's buffers are 1/0 after init: give them seeded values so the Mul + Add are not identities
    with torch.no_grad():
        for m in body.modules():
            if isinstance(m, misc_nn_ops.FrozenBatchNorm2d):
                m.weight.uniform_(0.5, 1.0)
                m.bias.normal_(0, 0.1)
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    returned = {'layer1': '0', 'layer2': '1', 'layer3': '2', 'layer4': '3'}
    return BackboneWithFPN(body, returned, [64, 128, 256, 512], 64, extra_blocks=LastLevelMaxPool())


# the box head 128 wide instead of 1024 (TwoMLPHead on 7x7 RoIAlign windows of the 64-wide FPN);
# few proposals and a low score threshold so that random weights still leave detections
common = dict(min_size=128, max_size=128, rpn_pre_nms_top_n_test=100, rpn_post_nms_top_n_test=50,
              box_score_thresh=0.001, box_detections_per_img=20)
torch.manual_seed(1234)
model = FasterRCNN(backbone(), box_head=TwoMLPHead(64 * 7 * 7, 128), box_predictor=FastRCNNPredictor(128, 4), **common)
model.eval()
torch.manual_seed(4321)
masked = MaskRCNN(backbone(), num_classes=None, box_head=TwoMLPHead(64 * 7 * 7, 128), box_predictor=FastRCNNPredictor(128, 4),
                  mask_head=MaskRCNNHeads(64, (64, 64), 1), mask_predictor=MaskRCNNPredictor(64, 64, 4), **common)
masked.eval()

x = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(7))
np.save(os.path.join(out, 'input.npy'), x[0].numpy().astype(np.float32))
with torch.no_grad():
    eager = model([x[0]])[0]
names = ['boxes', 'scores', 'labels']
torch.onnx.export(model, ([x[0]],), os.path.join(out, 'fasterrcnn.onnx'), opset_version=11,
                  input_names=['image'], output_names=names, do_constant_folding=True)
json.dump({
    'torch': torch.__version__, 'torchvision': torchvision.__version__, 'outputs': names,
    'eagerShapes': [list(eager[n].shape) for n in names],
}, open(os.path.join(out, 'meta.json'), 'w'))
torch.onnx.export(masked, ([x[0]],), os.path.join(out, 'maskrcnn.onnx'), opset_version=11,
                  input_names=['image'], output_names=names + ['masks'], do_constant_folding=True)
print('ok')
