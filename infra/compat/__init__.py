"""One module per third-party library whose private API the repo uses, each with its version range and canary.

Everything else uses public API only; a library upgrade that breaks a seam fails that module's canary test with
one line naming the module.
"""
