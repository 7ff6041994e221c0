# What gunicorn serves in `npm run bench`: the guide-like app (app.py), its
# collection pointed at the bench's database. The guide hard-codes flask_db; the
# bench reads and writes a fresh database of its own per run (the same one the
# service is given), never a user's flask_db.
import os

import app as guide

guide.collection = guide.client[os.environ["GUIDE_DB"]].data
app = guide.app
