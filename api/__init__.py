"""The service and command line: builds the heavy objects once and wires agent, memory and HTTP together."""
