# The guide's Flask app (the tutorial this project succeeds links its repository,
# nvsblmike/flask-mongodb-app, app.py), kept as published so that `npm run bench` can
# put it beside the service. It does not even run as published; the one fix it needs
# to start is marked FIX. Nothing else is changed: the password is still read from
# MONGODB_PASS while the guide's Deployment sets MONGODB_PASSWORD (harmless here: the
# bench's database has no users), the database is still flask_db (wsgi.py points the
# bench at its own), and GET /data still returns every document, with no limit.
from flask import Flask, request, jsonify
from flask_cors import cross_origin  # FIX: the guide decorates with @cross_origin() but never imports it (NameError at start)
from pymongo import MongoClient
from datetime import datetime
import os

app = Flask(__name__)
mongodb_uri = os.environ.get("MONGODB_URI", "mongodb://localhost:27017/")
client = MongoClient(mongodb_uri, username=os.environ.get("MONGODB_USER"), password=os.environ.get("MONGODB_PASS"))
db = client.flask_db
collection = db.data


@app.route('/')
@cross_origin()
def index():
    return f"Welcome to the Flask app! The current time is: {datetime.now()}"


@app.route('/data', methods=['GET', 'POST'])
@cross_origin()
def data():
    if request.method == 'POST':
        data = request.get_json()
        collection.insert_one(data)
        return jsonify({"status": "Data inserted"}), 201
    elif request.method == 'GET':
        data = list(collection.find({}, {"_id": 0}))
        return jsonify(data), 200


if __name__ == '__main__':
    app.run(host='0.0.0.0', port=5000)
