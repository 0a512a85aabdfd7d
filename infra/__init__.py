"""RoboJam's Pulumi program: one program, three targets picked by the stack's `robojam:target`.

Importing this package creates nothing; `infra/__main__.py` (what `pulumi up` runs) calls
`infra.program.main()`.
"""
