"""The wire contract: one Avro record schema per event or command type, and tools to use them.

`schemas/common/` holds named types shared by several records (Money, OrderLine, ...); they are inlined
into each record when it is loaded, so every registered schema stands alone.
"""
