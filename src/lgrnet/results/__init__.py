"""The result folder, lgrnet's central output, owned here: its writer and reader, "is this a
result folder", frame naming (:mod:`.folder`), the corrections beside the model's masks and their
one locked writer (:mod:`.corrections`), PNG and overlay encoders (:mod:`.writers`) and the DICOM
Segmentation written for DICOM inputs (:mod:`.dicom_seg`)."""
