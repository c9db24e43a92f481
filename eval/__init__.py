"""Benchmarks and studies of imprint: each module evaluates one component and writes a JSON report."""
