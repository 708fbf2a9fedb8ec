"""Shift reports people can hand on: the figures of one shift gathered from the store
(`reports.shift`) and rendered as one self-contained HTML file (`reports.html`)."""
