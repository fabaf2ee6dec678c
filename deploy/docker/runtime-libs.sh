#!/bin/sh
# Makes sure the image has the OpenMP runtime that LightGBM loads. The local Debian base
# has it; the official slim Python image does not, and then it is installed from Debian's
# mirror (that build needs network access).
set -eu
if ! ldconfig -p | grep -q 'libgomp\.so\.1'; then
    apt-get update
    apt-get install -y --no-install-recommends libgomp1
    rm -rf /var/lib/apt/lists/*
fi
