"""moto_server with DynamoDB requests applied one at a time.

moto's DynamoDB backend checks a write's condition and applies it without a lock, and restores a
whole table when a transaction is cancelled; with requests served on parallel threads, two
conditional writes can both pass, or a cancelled transaction can undo another request's write.
Real DynamoDB applies each item write (and each transaction) atomically. Serialising DynamoDB
requests makes moto keep that promise, so concurrency tests test prechat rather than moto.
Other services (SQS long polls in particular) are still served concurrently.

Usage: python moto_server.py -H 127.0.0.1 -p PORT   (the same arguments as moto_server)
"""
import os
import sys
import threading
import time

import moto.server

if "faketime" in os.environ.get("LD_PRELOAD", ""):
    # Under `faketime` with DONT_FAKE_MONOTONIC=1 (`cargo xtask test`'s moved-clock step),
    # libfaketime answers time.sleep with EINVAL while condition waits work: sleep on one.
    def _sleep(seconds, _never=threading.Event()):
        _never.wait(max(0.0, seconds))

    time.sleep = _sleep

_dynamodb_lock = threading.Lock()
_Base = moto.server.DomainDispatcherApplication


class SerialDynamoDB(_Base):
    def __call__(self, environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
            with _dynamodb_lock:
                # Materialise the body inside the lock: the write happens while it is produced.
                return list(super().__call__(environ, start_response))
        return super().__call__(environ, start_response)


moto.server.DomainDispatcherApplication = SerialDynamoDB

if __name__ == "__main__":
    moto.server.main(sys.argv[1:])
