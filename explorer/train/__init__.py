"""Training the models the project makes itself (run: python -m explorer.train --help).

Only used offline by developers; the app never imports this package.
"""
