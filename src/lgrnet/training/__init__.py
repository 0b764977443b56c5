"""Training: the trainer (:mod:`.trainer`), optimiser and schedule (:mod:`.optim`), resumable
state (:mod:`.state`), the log (:mod:`.log`), fine-tuning from a trained model (:mod:`.finetune`),
validation (:mod:`.validation`), and the data side: the training dataset (:mod:`.dataset`), clip
sampling (:mod:`.clip_sampler`) and augmentation (:mod:`.transforms`)."""
