"""Moving stable preferences from retrieval into weights (clustering, editors, drift guard, scheduler).

Empty for now: the foundation issue builds retrieval memory; the weight-memory and consolidation issues fill
this package.
"""
