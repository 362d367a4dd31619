"""AML screening of committed ledger events: pure Python, no Django.

`movements` turns an event body into the money movement AML looks at (who paid whom, how
much); `screening` evaluates the rules over movements in seq order. The Django app (`aml`)
adapts this: thresholds and watch list from the database, checks and alerts into it.
"""
