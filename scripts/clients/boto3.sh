#!/usr/bin/env bash
# A session with boto3 (python3) against a Kintsugi gateway; the session
# itself is boto3_session.py. See common.sh for the environment.
source "$(dirname "$0")/common.sh"
export BIG_FILE SMALL_FILE
exec python3 "$(dirname "$0")/boto3_session.py"
