"""Lessons (issue 24): guided labs that set up a real view, ask the learner to predict, then reveal the
answer the loaded model computes on that view.

``core`` holds the data model (Lab, Step, Answer), ``labs`` the labs themselves (``LABS``, ``lab``), and
one ``keys_*`` module per family the answer-key functions, which measure the live model through the
adapters (never torch directly) on the view as it is set up: change the text and the answer follows.
Nothing here imports Streamlit; the Lessons page and the class votes build on it.
"""
