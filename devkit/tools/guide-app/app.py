# A stand-in for the guide's Flask app, written here from what the guide's app does (the guide
# links its repository; its code is not ours to copy), so that `npm run bench` can put the
# guide's way of serving the data beside the service's: Flask, pymongo at the guide's pins,
# @cross_origin on each route (flask-cors), GET /data as every document without `_id` through
# jsonify (no limit, no paging), POST /data as insert_one of the parsed body, answered 201.
# Not the guide's text; the same work per request. wsgi.py points it at the bench's database.
import datetime
import os

from flask import Flask, jsonify, request
from flask_cors import cross_origin
from pymongo import MongoClient

app = Flask(__name__)
client = MongoClient(os.environ.get("MONGODB_URI", "mongodb://localhost:27017/"))
collection = client["flask_db"]["data"]


@app.route("/")
@cross_origin()
def welcome():
    return "Welcome to the Flask app! The current time is: %s" % datetime.datetime.now()


@app.route("/data", methods=["GET", "POST"])
@cross_origin()
def data_route():
    if request.method == "GET":
        return jsonify(list(collection.find({}, {"_id": 0}))), 200
    collection.insert_one(request.get_json())
    return jsonify({"status": "Data inserted"}), 201
