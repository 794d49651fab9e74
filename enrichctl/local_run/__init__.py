"""`enrichctl local`: run the deployed state machine on a laptop (moto + real handlers).

- `definition`: the synthesized definition with tokens resolved to local names.
- `moto_hooks`: in-process Lambda handlers and recorded retry waits inside moto.
- `runner`: starts the local services, runs one execution and summarises it.
"""
