"""Durable, fast session upload.

``uploader.upload_session`` uploads one session folder (parts in parallel,
CRC32 on every part and object, journal for resuming, manifest last, local
copy removed only after verification); ``runner`` drains the spool, reports
its status and recovers interrupted multipart uploads. ``errors`` says what
can go wrong and which exit code a script sees.
"""
