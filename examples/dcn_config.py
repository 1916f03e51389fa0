"""One DCN configuration shared by the HugeCTR-style script and its plain-PyTorch twin.

Sizes are small enough for a 2-core CPU; the graph is HugeCTR's samples/dcn (formats.md 4.4 (2)).
"""
SLOT_SIZES = [1000, 500, 2000, 300, 50, 20, 800, 600, 5, 1500, 700, 1200, 400, 30,
              900, 1100, 12, 650, 350, 6, 1300, 25, 18, 750, 110, 450]
DENSE_DIM = 13
VEC = 8
CROSS_LAYERS = 3
HIDDEN = 128
DROPOUT = 0.5
BATCH = 512
BATCH_EVAL = 2048
LR = 0.001
TRAIN_SAMPLES = 192 * 512
EVAL_SAMPLES = 16 * 2048
ITERS = 384
SEED = 2026
