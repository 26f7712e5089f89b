"""Tests of the apiserver's authentication and authorization building blocks."""
