"""Offline evaluation: recorded outcomes, importers, metrics, strategies to replay, reports.

Needs the `taskroute[eval]` extra (numpy; scikit-learn and matplotlib for training and reports,
imported only where used).
"""
