"""A PACS over DICOMweb (dicomweb-client): find cine loops (QIDO-RS), fetch them (WADO-RS), segment
them with the usual result folders, store each DICOM SEG (and measurement report) back into its
study (STOW-RS), and watch an archive for new cines.

    connection.py   "dicomweb:URL" -> a client: credentials, TLS, timeouts, errors as one line
    instances.py    which instances are cines (QIDO), fetching one (WADO) and checking what came
    store.py        storing a result folder's SEG / SR into the source's study, and the record of it
    predict.py      `lgrnet predict dicomweb:URL --study UID`: through lgrnet.runs.batch
    watch.py        `lgrnet watch dicomweb:URL`: Orthanc's changes feed or QIDO by date, a state file
    options.py      the command-line options both commands share
"""
