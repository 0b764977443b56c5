# What both stages of the shipped model's recipe share, sourced by scripts/train_best_model.sh (stage 1)
# and scripts/continue_best_model.sh (stage 2) after they set DATA (the MICCAI VPS root): the training
# data (CVC-ClinicDB-612 Train + CVC-ColonDB-300 Train), selection on CVC-ClinicDB-612 Valid, clips of
# 4 frames in batches of 2, a cosine schedule down to 1 % of the learning rate, the weight EMA, the
# photometric and geometric clip augmentation (docs/training.md, "Recipe options"), validation and a
# checkpoint every 300 steps; and the last step of each stage, export_best.
RECIPE_DATA=(--data "$DATA/CVC-ClinicDB-612/Train" --data "$DATA/CVC-ColonDB-300/Train"
             --val "$DATA/CVC-ClinicDB-612/Valid")
RECIPE_SHARED=(train.clip_len=4 train.batch_size=2 train.reference_stride=1 train.num_workers=0
               train.lr_schedule=cosine train.min_lr_ratio=0.01 train.ema_decay=0.998
               train.aug_brightness=0.2 train.aug_contrast=0.2 train.aug_saturation=0.2 train.aug_hue=0.02
               train.aug_blur_prob=0.2 train.aug_noise_std=0.02
               train.aug_scale=0.15 train.aug_rotate=15 train.aug_translate=0.08 train.aug_prob=0.8
               train.eval_every=300 train.checkpoint_every=300)

# export_best RUN OUT RECIPE: RUN/best.safetensors -> OUT in float16, recording RECIPE and the
# low-confidence threshold the review page starts at (the one that flags failed frames best on Valid)
export_best() {
  lgrnet evaluate --weights "$1/best.safetensors" --data "$DATA" --split CVC-ClinicDB-612/Valid \
    --out "$1/valid-eval" --device cpu
  python scripts/export_demo_weights.py "$1/best.safetensors" "$2" "$3" --confidence "$1/valid-eval/confidence.json"
}
