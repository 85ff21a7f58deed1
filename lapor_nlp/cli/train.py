"""(not yet available)"""
import argparse
HELP = "(not yet available)"
def add_arguments(p: argparse.ArgumentParser) -> None:
    pass
def run(args: argparse.Namespace) -> int:
    raise SystemExit("lapor-nlp: train is not available yet")
