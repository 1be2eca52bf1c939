"""Templates and slot lists of the synthesized voice-assistant corpus (see ``model/corpus.py``).

Template grammar
----------------
``{slot}``        a value from a slot (a list below, or a generator in ``model/corpus.py``:
                  ``time``, ``duration``, ``day``, ``percent``, ``temperature``, ``number``,
                  ``small_number``, ``count``, ``level``, ``contact``, ``full_name``, ``date``)
``[words]``       optional words (taken with probability one half)
``(a|b|c)``       one of the alternatives, uniformly; groups nest

Templates are written in ordinary text ("7:30 pm", "40%"); the generator normalizes every sentence
with :func:`model.text.normalize`, so the transcripts say the numbers the way eSpeak NG speaks the
normalized text. Slot values are plain English words that eSpeak pronounces reasonably: no
abbreviations ("saint louis", not "st. louis"), no symbols.

Each intent's templates get ids ``<intent>.<index>`` in list order; never reorder or delete a
template (append instead), or the ids of existing corpora stop matching.
"""

from __future__ import annotations

__all__ = ["TEMPLATES", "SLOTS"]


def _list(text: str) -> list[str]:
    """Entries separated by commas (an entry may wrap onto the next line), whitespace collapsed,
    first occurrence kept."""
    out: dict[str, None] = {}
    for entry in text.split(","):
        entry = " ".join(entry.split())
        if entry:
            out[entry] = None
    return list(out)


TEMPLATES: dict[str, list[str]] = {
    "call": [
        "call {contact}",
        "(call|phone|ring) {contact} [please]",
        "[please] (call|dial) {contact} on (speaker|speakerphone|video)",
        "(can|could) you (call|phone) {contact} [for me]",
        "start a video call with {contact}",
        "(call|phone) {contact} (at home|at work|on (his|her|their) (cell|mobile))",
        "i (want|need) to (call|talk to|speak to) {contact}",
        "get {contact} on the phone",
        "(redial|call back) {contact}",
        "hang up [the call]",
        "(answer|pick up) the (call|phone)",
        "(who called me|did {first} call me) (today|this morning|yesterday|while i was out)",
    ],
    "message": [
        "(text|message) {contact} (that|saying) i'm (running late|on my way|almost there|stuck in traffic)",
        "send a (message|text) to {contact}",
        "send {contact} a (message|text) (saying|that says) (see you at {time}|call me back|thank you|happy birthday)",
        "tell {contact} [that] i (will|can) be (there|home) (at|by) {time}",
        "(read|play) my (new|latest|unread) (messages|texts)",
        "(do i have|are there) any (new|unread) messages from {contact}",
        "reply to {contact} (saying|with) (sounds good|okay|no problem|i'll call you later)",
        "(email|send an email to) {contact} about the (meeting|project|party|trip|report)",
        "ask {contact} (if|whether) (she|he|they) (wants|want) (pizza|coffee|to come over) {day}",
        "(share my location with|send my location to) {contact}",
        "let {contact} know (dinner is ready|i'm leaving now|the door is open)",
    ],
    "device": [
        "turn (on|off) the {device} [in the {room}]",
        "(switch|turn) the {room} {device} (on|off)",
        "[please] (turn|switch) (on|off) [all] the (lights|lamps) in the {room}",
        "(is|are) the {device} in the {room} (on|off|still on)",
        "(lock|unlock) the {door}",
        "(open|close) the {opening} [in the {room}]",
        "(start|stop|pause) the {appliance}",
        "(turn|switch) everything off in the {room}",
        "(did i leave|have i left) the {device} on in the {room}",
        "(turn|set) the {room} to (movie|reading|dinner|night|party) mode",
        "(run|start) the (vacuum|robot vacuum) in the {room}",
        "(is|was) the {door} (locked|unlocked|open|closed)",
        "(arm|disarm) the (alarm system|security system|cameras)",
        "show me the {camera} camera",
    ],
    "lights": [
        "(dim|brighten) the {light} [in the {room}] (to|by) {percent}",
        "set the {room} (lights|lamp) to {percent} [brightness]",
        "(make|turn) the {room} (lights|lamp) {color}",
        "change the {light} [in the {room}] to {color}",
        "(make it|set the lights) (brighter|darker|warmer|cooler) in the {room}",
        "set the {light} to (warm white|cool white|daylight|candlelight)",
        "turn the {light} (up|down) [a (bit|little)]",
    ],
    "thermostat": [
        "set the (thermostat|heat|temperature|air conditioning) to {temperature}",
        "(raise|lower|turn up|turn down) the (temperature|heat) [in the {room}] by {small_number} degrees",
        "(what's|what is) the temperature (inside|in the {room}|in the house)",
        "(make it|set it to) {temperature} in the {room}",
        "(turn|switch) the (heating|air conditioning|fan) to (auto|eco|cool|heat|off) mode",
        "is the (heat|heating|air conditioning|fan) (on|running)",
        "(i'm|it's) (too cold|too hot|freezing|boiling) in (here|the {room})",
    ],
    "timer": [
        "set a timer for {duration}",
        "set (a|the) timer for {duration} (called|named|for the) {label}",
        "start a timer for {duration} [called {label}]",
        "(how much time is left|how long is left) on (my|the) [{label}] timer",
        "(cancel|stop|pause|resume) the [{label}] timer",
        "add {duration} to the [{label}] timer",
        "(set|start) (a|another) timer for {duration} (please|for the {label}|for the oven)",
        "timer {duration}",
        "(what timers do i have|how many timers are running)",
        "remind me in {duration} to check the {label}",
    ],
    "alarm": [
        "set an alarm for {time}",
        "(wake me up|get me up) at {time} [{day}]",
        "set an alarm for {time} {day}",
        "(set|create) a (daily|weekday|weekend) alarm (for|at) {time}",
        "(cancel|delete|turn off) (my|the) (alarm|{time} alarm) [{day}]",
        "(what time is|when is) my [next] alarm [set for]",
        "(snooze|stop) the alarm [for {duration}]",
        "(move|change) my {time} alarm to {time}",
        "(do i have|is there) an alarm set {day}",
        "wake me up in {duration}",
    ],
    "reminder": [
        "remind me to {task} {day} at {time}",
        "remind me (at|around) {time} to {task}",
        "(set|create) a reminder to {task} [{day}]",
        "remind me {day} to {task}",
        "(don't let me|make sure i don't) forget to {task} [{day}]",
        "(what are|read me|tell me) my reminders [for {day}]",
        "(delete|cancel|remove) the reminder to {task}",
        "remind me in {duration} to {task}",
        "remind me (every|each) {weekday} to {task}",
        "remind me on {date} to {task}",
    ],
    "calendar": [
        "(what's|what is) on my calendar {day}",
        "(schedule|add|put) (a|an) {event} with {contact} {day} at {time}",
        "(when is|what time is) my (next|first) {event}",
        "(cancel|move|reschedule) my {event} with {contact}",
        "(am i|are we) free {day} (at|after|before) {time}",
        "(do i have|is there) anything (scheduled|planned|on my calendar) {day}",
        "(add|create) an event called {event} on {date} at {time}",
        "(what's|what is) the date (today|tomorrow|next (friday|monday|week))",
        "how many days (until|till) {holiday}",
    ],
    "weather": [
        "(what's|what is) the weather [like] in {city} [{day}]",
        "(will it|is it going to) (rain|snow|be windy|be sunny|be cold|be hot) in {city} {day}",
        "(do i need|should i take|should i bring) (an umbrella|a jacket|a coat|sunscreen) {day}",
        "(what's|what is) the (forecast|weather forecast) for {city} [{day}]",
        "how (hot|cold|warm|windy) (is it|will it be) in {city} [{day}]",
        "(what's|what is) the temperature (outside|in {city}) [right now]",
        "(is it|will it be) (raining|snowing|sunny|cloudy|foggy) in {city} [{day}]",
        "(what time is|when is) (sunrise|sunset) [in {city}] [{day}]",
        "(what's|how's) the air quality (in {city}|today|outside)",
        "weather in {city}",
        "(give me|tell me) the (weekend|weekly|ten day|hourly) forecast [for {city}]",
        "(what's|what is) the humidity (in {city}|outside|today)",
    ],
    "music": [
        "play [some] {artist}",
        "play [some] {genre} [music]",
        "play (music|songs|something) by {artist}",
        "play the (latest|new|newest) (album|song|single) (by|from) {artist}",
        "play [some] {mood} music",
        "(put on|shuffle) [some] {genre} [music] [in the {room}]",
        "play {genre} (radio|playlist|hits)",
        "play (my|the) {playlist} playlist",
        "i (want|would like) to (hear|listen to) {artist}",
        "play {decade} {genre}",
        "play songs (like|similar to) {artist}",
        "play {artist} (in|on the speaker in) the {room}",
        "(who sings|who is singing|what song is) this",
        "play (the radio|a podcast|an audiobook|white noise|rain sounds|ocean sounds)",
    ],
    "playback": [
        "(pause|stop|resume|continue) [the] (music|song|podcast|audiobook|playback)",
        "(next|skip this|skip the) (song|track)",
        "(go back|play the previous song|play the last song|repeat this song)",
        "(turn|set) the volume (up|down) [a (bit|little|lot)]",
        "set [the] volume to {level}",
        "volume {level}",
        "(turn it|make it) (louder|quieter|softer)",
        "(mute|unmute) [the] (speaker|tv|music|sound)",
        "(shuffle|repeat) (on|off)",
        "(skip|fast forward|rewind|go back) {duration}",
        "(like|dislike|save) this song",
        "(add|save) this (song|track) to my {playlist} playlist",
        "(play|resume) (the|my) (audiobook|podcast|show) (from where i left off|in the {room})",
    ],
    "shopping": [
        "add {item} to my (shopping|grocery) list",
        "put {item} and {item} on (the|my) (shopping|grocery) list",
        "add {count} {count_item} to my (shopping|grocery|to do) list",
        "(remove|delete|take) {item} (from|off) my (shopping|grocery) list",
        "(what's|what is) on my (shopping|grocery|to do) list",
        "(do i|did i) (have|add|put) {item} on my list",
        "(clear|empty) my (shopping|grocery) list",
        "(we're|i'm) out of {item}",
        "(order|buy|reorder) [more] {item}",
        "add {task} to my to do list",
        "(where is|track) my (package|order|delivery)",
        "(how much does|what does) {item} cost",
    ],
    "question": [
        "what time is it [in {city}]",
        "(what's|what is) today's date",
        "(what's|what is) {number} (plus|minus|times) {number}",
        "(what's|what is) {number} divided by {small_number}",
        "how many {units_in} [are there]",
        "convert {small_number} {conversion}",
        "how do you spell {word}",
        "(what does|what's the meaning of|define) {word} [mean]",
        "(what's|what is) the capital of {country}",
        "how far is {city} from {city}",
        "(how do i|how do you) (make|cook) {dish}",
        "(what's|what is) a good recipe for {dish}",
        "how do you say {word} in {language}",
        "translate {word} (to|into) {language}",
        "(who won|what was the score of) the {team} game [last night]",
        "when do the {team} play (next|again)",
        "(find|are there any|show me) {cuisine} restaurants (near me|nearby|open now)",
        "(how long|how much time) will it take to (drive|get) to {city}",
        "(what's|what is|how's) the traffic [like] (on my way to work|to {city}|right now)",
        "(what's|what is) {percent} of {number}",
        "(tell me|do you know) a (joke|fun fact|riddle|story)",
        "(what's|what is) the population of {city}",
        "when is {holiday} [this year]",
        "how old is {artist}",
        "(flip a coin|roll a die|pick a number between one and {small_number})",
        "what (day|date) is it (today|tomorrow)",
    ],
}


SLOTS: dict[str, list[str]] = {
    "first": _list("""
        james, mary, robert, patricia, john, jennifer, michael, linda, david, elizabeth, william,
        barbara, richard, susan, joseph, jessica, thomas, sarah, charles, karen, christopher, lisa,
        daniel, nancy, matthew, betty, anthony, margaret, mark, sandra, donald, ashley, steven,
        kimberly, paul, emily, andrew, donna, joshua, michelle, kenneth, carol, kevin, amanda, brian,
        dorothy, george, melissa, timothy, deborah, ronald, stephanie, edward, rebecca, jason,
        sharon, jeffrey, laura, ryan, cynthia, jacob, kathleen, gary, amy, nicholas, angela, eric,
        shirley, jonathan, anna, stephen, brenda, larry, pamela, justin, emma, scott, nicole,
        brandon, helen, benjamin, samantha, samuel, katherine, gregory, christine, alexander, debra,
        frank, rachel, patrick, carolyn, raymond, janet, jack, catherine, dennis, maria, jerry,
        heather, tyler, diane, aaron, ruth, jose, julie, adam, olivia, nathan, joyce, henry,
        virginia, douglas, victoria, zachary, kelly, peter, lauren, kyle, christina, ethan, joan,
        walter, evelyn, noah, judith, jeremy, megan, christian, andrea, keith, cheryl, roger,
        hannah, terry, jacqueline, gerald, martha, harold, gloria, sean, teresa, austin, ann,
        carl, sara, arthur, madison, lawrence, frances, dylan, kathryn, jesse, janice, jordan,
        jean, bryan, abigail, billy, alice, joe, judy, bruce, sophia, gabriel, grace, logan, denise,
        albert, amber, willie, doris, alan, marilyn, juan, danielle, wayne, beverly, elijah,
        isabella, randy, theresa, roy, diana, vincent, natalie, ralph, brittany, eugene, charlotte,
        russell, marie, bobby, kayla, mason, alexis, philip, lori, louis, oliver, liam, ava, mia,
        lucas, amelia, harper, elias, ella, leo, chloe, owen, lily, caleb, zoe, isaac, nora,
        luke, riley, hudson, aria, ezra, layla, miles, scarlett, carter, stella, wyatt, hazel,
        julian, violet, levi, aurora, lincoln, ellie, jaxon, paisley, asher, audrey, theo, claire,
        maya, nina, rosa, carmen, sofia, lucia, elena, priya, anita, ravi, arjun, sanjay, wei,
        mei, hiro, yuki, kenji, omar, fatima, ahmed, layla, yusuf, amir, leila, kwame, amara,
        chidi, ngozi, diego, mateo, santiago, camila, valentina, pablo, marco, giulia, luca,
        francesca, pierre, chloe, hans, greta, ingrid, sven, erik, astrid, olga, ivan, dmitri,
        tanya, aisha, zara, ben, sam, max, tom, tim, kate, beth, jane, jill, jim, bob, rob, ted,
        nick, pete, rick, steve, dave, mike, chris, alex, jamie, taylor, morgan, casey, jordan,
        riley, quinn, avery, rowan, sage, blake, reese, dakota, skyler, parker, hayden, emery,
        finley, harley, kendall, logan, marley, oakley, peyton, remy, tatum
    """),
    "last": _list("""
        smith, johnson, williams, brown, jones, garcia, miller, davis, rodriguez, martinez,
        hernandez, lopez, gonzalez, wilson, anderson, thomas, taylor, moore, jackson, martin, lee,
        perez, thompson, white, harris, sanchez, clark, ramirez, lewis, robinson, walker, young,
        allen, king, wright, scott, torres, nguyen, hill, flores, green, adams, nelson, baker, hall,
        rivera, campbell, mitchell, carter, roberts, gomez, phillips, evans, turner, diaz, parker,
        cruz, edwards, collins, reyes, stewart, morris, morales, murphy, cook, rogers, gutierrez,
        ortiz, morgan, cooper, peterson, bailey, reed, kelly, howard, ramos, kim, cox, ward,
        richardson, watson, brooks, chavez, wood, james, bennett, gray, mendoza, ruiz, hughes,
        price, alvarez, castillo, sanders, patel, myers, long, ross, foster, jimenez, powell,
        jenkins, perry, russell, sullivan, bell, coleman, butler, henderson, barnes, gonzales,
        fisher, vasquez, simmons, romero, jordan, patterson, alexander, hamilton, graham, reynolds,
        griffin, wallace, moreno, west, cole, hayes, bryant, herrera, gibson, ellis, tran, medina,
        aguilar, stevens, murray, ford, castro, marshall, owens, harrison, fernandez, mcdonald,
        woods, washington, kennedy, wells, vargas, henry, chen, freeman, webb, tucker, guzman,
        burns, crawford, olson, simpson, porter, hunter, gordon, mendez, silva, shaw, snyder,
        mason, dixon, munoz, hunt, hicks, holmes, palmer, wagner, black, robertson, boyd, rose,
        stone, salazar, fox, warren, mills, meyer, rice, schmidt, garza, daniels, ferguson, nichols,
        stephens, soto, weaver, ryan, gardner, payne, grant, dunn, kelley, spencer, hawkins, arnold,
        pierce, vazquez, hansen, peters, santos, hart, bradley, knight, elliott, cunningham,
        duncan, armstrong, hudson, carroll, lane, riley, andrews, alvarado, ray, delgado, berry,
        perkins, hoffman, johnston, matthews, pena, richards, contreras, willis, carpenter,
        lawrence, sandoval, guerrero, george, chapman, rios, estrada, ortega, watkins, greene,
        nunez, wheeler, valdez, harper, burke, larson, santiago, maldonado, morrison, franklin,
        carlson, austin, dominguez, carr, lawson, jacobs, o'brien, lynch, singh, vega, bishop,
        montgomery, oliver, jensen, harvey, williamson, gilbert, dean, sims, espinoza, howell, li,
        wong, reid, hanson, le, mccoy, garrett, burton, fuller, wang, weber, welch, rojas, lucas,
        marquez, fields, park, yang, little, banks, padilla, day, walsh, bowman, schultz, luna,
        fowler, mejia, davidson, acosta, brewer, may, holland, juarez, newman, pearson, curtis,
        cortez, douglas, schneider, joseph, barrett, navarro, figueroa, keller, avila, wade,
        molina, stanley, hopkins, campos, barnett, bates, chambers, caldwell, beck, lambert,
        miranda, byrd, craig, ayala, lowe, frazier, powers, neal, leonard, gregory, carrillo,
        sutton, fleming, rhodes, shelton, schwartz, norris, jennings, watts, duran, walters, cohen,
        mcdaniel, moran, parks, steele, vaughn, becker, holt, deleon, barker, terry, hale, leon,
        hail, benson, haynes, horton, miles, lyons, pham, graves, bush, thornton, wolfe, warner
    """),
    "relation": _list("""
        mom, dad, mum, mother, father, grandma, grandpa, granny, my wife, my husband, my sister,
        my brother, my son, my daughter, my aunt, my uncle, my cousin, my boss, my neighbor,
        my partner, my girlfriend, my boyfriend, the babysitter, the doctor, the dentist,
        the plumber, the office, home, my mom, my dad, nana, papa, grandma and grandpa
    """),
    "device": _list("""
        lights, light, lamp, fan, ceiling fan, tv, television, heater, space heater,
        air conditioner, air purifier, humidifier, dehumidifier, radio, speaker, stereo,
        coffee maker, kettle, computer, monitor, printer, projector, night light, desk lamp,
        floor lamp, string lights, fireplace, porch light, sprinklers, water heater, fountain,
        christmas lights, fairy lights, reading light, ceiling light, bedside lamp, electric blanket,
        towel warmer, hot tub, pool pump, sound machine, diffuser, aquarium light, garage light
    """),
    "light": _list("""
        lights, light, lamp, ceiling light, desk lamp, floor lamp, bedside lamp, night light,
        reading light, string lights, strip lights, pendant lights, chandelier, spotlights,
        porch light, hallway light, kitchen lights, wall lights, accent lights, fairy lights
    """),
    "room": _list("""
        kitchen, living room, bedroom, bathroom, dining room, office, garage, basement, attic,
        hallway, nursery, guest room, laundry room, study, den, family room, playroom, porch,
        backyard, front yard, patio, garden, master bedroom, kids room, upstairs bathroom,
        downstairs bathroom, entryway, mudroom, sunroom, library, gym, workshop, pantry,
        closet, balcony, deck, game room, media room, loft, shed
    """),
    "door": _list("""
        front door, back door, side door, garage door, patio door, basement door, gate,
        front gate, back gate, shed door, office door, door
    """),
    "opening": _list("""
        blinds, curtains, shades, windows, window, garage door, gate, skylight, shutters,
        drapes, roller blinds, awning
    """),
    "appliance": _list("""
        dishwasher, washing machine, washer, dryer, oven, microwave, vacuum, robot vacuum,
        coffee maker, rice cooker, slow cooker, bread maker, sprinklers, pool cleaner,
        lawn mower, air fryer, pressure cooker
    """),
    "camera": _list("""
        front door, back door, backyard, driveway, garage, nursery, living room, porch,
        side gate, baby, kitchen, doorbell
    """),
    "color": _list("""
        red, green, blue, yellow, orange, purple, pink, white, warm white, cool white, teal,
        turquoise, cyan, magenta, lavender, violet, gold, amber, lime, coral, peach, crimson,
        navy blue, sky blue, light blue, dark blue, mint green, forest green, indigo
    """),
    "label": _list("""
        pasta, rice, eggs, pizza, laundry, tea, coffee, cookies, bread, cake, chicken, steak,
        potatoes, oven, workout, nap, homework, study, meditation, meeting, parking, break,
        stretching, cooking, baking, roast, turkey, soup, vegetables, popcorn, brownies, muffins,
        bath, reading, piano practice, plank, yoga, cleaning, dinner, lunch, breakfast
    """),
    "task": _list("""
        take out the trash, call the dentist, pick up the kids, buy milk, water the plants,
        feed the dog, feed the cat, walk the dog, pay the rent, pay the electric bill,
        take my medicine, take my vitamins, call my mom, call the bank, book a table,
        check the mail, pick up the dry cleaning, return the library books, go to the gym,
        charge my phone, lock the back door, move the car, renew my passport, send the invoice,
        email my boss, buy a birthday present, pick up groceries, clean the kitchen,
        do the laundry, change the sheets, vacuum the living room, mow the lawn, empty the
        dishwasher, start dinner, defrost the chicken, turn off the oven, go to bed,
        stretch, drink some water, stand up, check the oven, study for the test, practice piano,
        call the vet, schedule a haircut, cancel the subscription, back up my computer,
        print the tickets, pack my lunch, bring an umbrella, get gas, wash the car, file my taxes,
        order more coffee, buy flowers, write a thank you note, reply to the email, check on
        grandma, put the bins out, take the chicken out of the freezer, start the dishwasher,
        turn on the sprinklers, pick up the prescription, go for a run, call the plumber
    """),
    "event": _list("""
        meeting, lunch, dinner, call, appointment, dentist appointment, doctor's appointment,
        haircut, interview, coffee, party, date, game, practice, lesson, review, workout,
        team meeting, conference call, birthday party, school pickup, flight, class, concert
    """),
    "weekday": _list("""
        monday, tuesday, wednesday, thursday, friday, saturday, sunday, morning, evening, night,
        weekday, weekend
    """),
    "holiday": _list("""
        christmas, new year's eve, new year's day, thanksgiving, halloween, easter,
        valentine's day, mother's day, father's day, independence day, labor day, memorial day,
        hanukkah, diwali, easter sunday, saint patrick's day, my birthday, spring break,
        summer vacation, the weekend, the first day of spring, the first day of summer,
        christmas eve, boxing day
    """),
    "city": _list("""
        new york, los angeles, chicago, houston, phoenix, philadelphia, san antonio, san diego,
        dallas, san jose, austin, jacksonville, fort worth, columbus, charlotte, indianapolis,
        san francisco, seattle, denver, washington, nashville, oklahoma city, el paso, boston,
        portland, las vegas, detroit, memphis, louisville, baltimore, milwaukee, albuquerque,
        tucson, fresno, sacramento, kansas city, mesa, atlanta, omaha, colorado springs, raleigh,
        long beach, virginia beach, miami, oakland, minneapolis, tulsa, bakersfield, wichita,
        arlington, tampa, new orleans, cleveland, honolulu, anaheim, lexington, stockton,
        henderson, saint paul, cincinnati, pittsburgh, greensboro, anchorage, plano, lincoln,
        orlando, irvine, newark, toledo, durham, chula vista, fort wayne, jersey city,
        saint petersburg, laredo, madison, chandler, buffalo, lubbock, scottsdale, reno,
        glendale, gilbert, winston salem, norfolk, chesapeake, garland, irving, hialeah, fremont,
        boise, richmond, baton rouge, spokane, des moines, tacoma, san bernardino, modesto,
        fontana, santa clarita, birmingham, oxnard, fayetteville, moreno valley, rochester,
        glendale, huntington beach, salt lake city, grand rapids, amarillo, yonkers, aurora,
        montgomery, akron, little rock, huntsville, augusta, columbia, grand prairie, shreveport,
        overland park, tallahassee, mobile, knoxville, worcester, providence, chattanooga,
        savannah, syracuse, hartford, charleston, burlington, portland maine, santa fe, tempe,
        ann arbor, berkeley, boulder, palo alto, pasadena, santa barbara, santa monica, key west,
        toronto, montreal, vancouver, calgary, edmonton, ottawa, winnipeg, quebec city, halifax,
        victoria, mexico city, guadalajara, monterrey, cancun, tijuana, havana, kingston,
        panama city, bogota, lima, santiago, buenos aires, sao paulo, rio de janeiro, caracas,
        quito, montevideo, london, manchester, liverpool, birmingham, leeds, glasgow, edinburgh,
        bristol, cardiff, belfast, dublin, cork, paris, lyon, marseille, nice, bordeaux, brussels,
        amsterdam, rotterdam, berlin, munich, hamburg, frankfurt, cologne, vienna, zurich, geneva,
        rome, milan, naples, florence, venice, madrid, barcelona, seville, valencia, lisbon,
        porto, copenhagen, stockholm, oslo, helsinki, reykjavik, warsaw, krakow, prague,
        budapest, athens, istanbul, moscow, kiev, bucharest, sofia, belgrade, zagreb, cairo,
        casablanca, marrakesh, lagos, nairobi, accra, addis ababa, johannesburg, cape town,
        durban, dubai, abu dhabi, doha, riyadh, tel aviv, jerusalem, amman, beirut, tehran,
        karachi, lahore, delhi, new delhi, mumbai, bangalore, chennai, kolkata, hyderabad,
        kathmandu, dhaka, colombo, bangkok, hanoi, ho chi minh city, singapore, kuala lumpur,
        jakarta, bali, manila, hong kong, taipei, shanghai, beijing, shenzhen, seoul, busan,
        tokyo, osaka, kyoto, sapporo, sydney, melbourne, brisbane, perth, adelaide, canberra,
        auckland, wellington, christchurch, fiji, anchorage, fairbanks, juneau, spokane, eugene,
        salem, flagstaff, sedona, aspen, vail, park city, jackson, billings, fargo, sioux falls,
        duluth, green bay, peoria, springfield, dayton, erie, scranton, albany, ithaca, buffalo,
        portsmouth, bangor, nantucket, cape cod, atlantic city, annapolis, asheville, myrtle beach,
        hilton head, gainesville, naples, sarasota, fort lauderdale, palm springs, napa, sonoma,
        monterey, carmel, lake tahoe, yosemite, malibu, san luis obispo
    """),
    "country": _list("""
        france, germany, italy, spain, portugal, ireland, england, scotland, wales, norway,
        sweden, finland, denmark, iceland, poland, austria, switzerland, belgium, the netherlands,
        greece, turkey, russia, ukraine, romania, hungary, czechia, croatia, serbia, bulgaria,
        egypt, morocco, nigeria, kenya, ghana, ethiopia, south africa, tanzania, uganda, senegal,
        algeria, tunisia, israel, jordan, lebanon, saudi arabia, iran, iraq, pakistan, india,
        nepal, bangladesh, sri lanka, china, japan, south korea, mongolia, vietnam, thailand,
        cambodia, laos, malaysia, singapore, indonesia, the philippines, australia, new zealand,
        fiji, canada, mexico, cuba, jamaica, haiti, guatemala, honduras, costa rica, panama,
        colombia, venezuela, ecuador, peru, bolivia, chile, argentina, uruguay, paraguay, brazil,
        the united states, the united kingdom, kazakhstan, afghanistan, qatar, oman, kuwait,
        madagascar, zimbabwe, zambia, botswana, namibia, angola, cameroon, libya, sudan, somalia,
        estonia, latvia, lithuania, slovakia, slovenia, albania, cyprus, malta, luxembourg,
        monaco, belarus, georgia, armenia, azerbaijan, uzbekistan, myanmar, bhutan
    """),
    "language": _list("""
        spanish, french, german, italian, portuguese, japanese, chinese, mandarin, korean,
        russian, arabic, hindi, dutch, swedish, norwegian, danish, finnish, polish, greek,
        turkish, hebrew, vietnamese, thai, indonesian, swahili, irish, welsh, czech, hungarian,
        romanian, ukrainian, tagalog, latin, bengali, urdu, persian
    """),
    "artist": _list("""
        taylor swift, ed sheeran, adele, beyonce, drake, rihanna, bruno mars, billie eilish,
        ariana grande, justin bieber, lady gaga, katy perry, harry styles, dua lipa, the weeknd,
        post malone, olivia rodrigo, shawn mendes, sam smith, lizzo, kendrick lamar, eminem,
        kanye west, jay z, nicki minaj, cardi b, doja cat, bad bunny, shakira, jennifer lopez,
        the beatles, the rolling stones, queen, led zeppelin, pink floyd, the who, the doors,
        the eagles, fleetwood mac, elton john, david bowie, prince, michael jackson, madonna,
        whitney houston, mariah carey, celine dion, stevie wonder, marvin gaye, aretha franklin,
        ray charles, frank sinatra, elvis presley, johnny cash, dolly parton, willie nelson,
        garth brooks, shania twain, carrie underwood, luke bryan, blake shelton, kenny chesney,
        tim mcgraw, keith urban, chris stapleton, morgan wallen, kacey musgraves, miranda lambert,
        zac brown band, florida georgia line, lady antebellum, the chicks, bob dylan,
        bruce springsteen, tom petty, billy joel, paul simon, james taylor, neil young, joni
        mitchell, carole king, cat stevens, van morrison, eric clapton, jimi hendrix, santana,
        bob marley, nirvana, pearl jam, foo fighters, red hot chili peppers, green day,
        metallica, guns and roses, bon jovi, aerosmith, journey, the police, sting, u two,
        coldplay, radiohead, oasis, blur, the killers, arctic monkeys, imagine dragons,
        one republic, maroon five, twenty one pilots, the lumineers, mumford and sons,
        of monsters and men, florence and the machine, lorde, lana del rey, sia, halsey, pink,
        kelly clarkson, christina aguilera, britney spears, backstreet boys, nsync,
        one direction, bts, blackpink, the jonas brothers, jason mraz, john mayer, norah jones,
        michael buble, tony bennett, ella fitzgerald, louis armstrong, miles davis, john coltrane,
        duke ellington, billie holiday, nina simone, herbie hancock, chet baker, dave brubeck,
        yo yo ma, lang lang, andrea bocelli, luciano pavarotti, hans zimmer, john williams,
        ludwig van beethoven, wolfgang amadeus mozart, johann sebastian bach, frederic chopin,
        claude debussy, antonio vivaldi, pyotr tchaikovsky, daft punk, calvin harris, avicii,
        david guetta, marshmello, skrillex, the chainsmokers, kygo, diplo,
        tiesto, zedd, disclosure, odesza, bonobo, moby, enya, norah jones, alicia keys,
        john legend, usher, chris brown, the weeknd, frank ocean, sza, h e r, khalid,
        childish gambino, chance the rapper, j cole, travis scott, lil nas x, megan thee stallion,
        snoop dogg, doctor dre, ice cube, tupac, the notorious b i g, outkast, missy elliott,
        lauryn hill, fugees, run the jewels, the roots, a tribe called quest, de la soul,
        wu tang clan, beastie boys, hozier, james bay, george ezra, lewis capaldi, tom odell,
        ellie goulding, jess glynne, rita ora, little mix, the script, snow patrol, keane,
        the cranberries, u two, enrique iglesias, ricky martin, marc anthony, juanes, karol g,
        j balvin, maluma, rosalia, selena gomez, demi lovato, miley cyrus, hilary duff, avril lavigne,
        alanis morissette, sheryl crow, jewel, tracy chapman, bonnie raitt, patsy cline,
        loretta lynn, george strait, alan jackson, randy travis, brad paisley, jason aldean,
        luke combs, zach bryan, noah kahan, phoebe bridgers, boygenius, mitski, clairo,
        gracie abrams, sabrina carpenter, chappell roan, tate mcrae, benson boone, teddy swims
    """),
    "genre": _list("""
        rock, pop, jazz, blues, country, classical, hip hop, rap, r and b, soul, funk, disco,
        reggae, reggaeton, latin, salsa, electronic, dance, house, techno, trance, dubstep,
        ambient, folk, indie, indie rock, alternative, punk, metal, heavy metal, grunge,
        gospel, christian, bluegrass, americana, swing, big band, bossa nova, lo fi, chill,
        k pop, afrobeats, opera, piano, acoustic, soft rock, classic rock, oldies, motown,
        new wave, synth pop, singer songwriter, children's, lullabies, movie soundtracks,
        instrumental, meditation, world, flamenco, celtic, zydeco, ska
    """),
    "mood": _list("""
        relaxing, happy, upbeat, calm, sad, romantic, chill, energetic, peaceful, focus,
        study, workout, party, dinner, sleep, morning, rainy day, summer, road trip, cooking,
        background, quiet, soothing, feel good, dance, christmas, holiday, spooky, lazy sunday
    """),
    "playlist": _list("""
        favorites, workout, running, morning, evening, dinner party, road trip, chill, focus,
        sleep, cleaning, discover weekly, top hits, throwback, summer, beach, study, cooking,
        party, jazz night, sunday morning, rainy day, liked songs, kids, christmas
    """),
    "decade": _list("""
        fifties, sixties, seventies, eighties, nineties, two thousands, twenty tens, classic,
        modern, old school, new
    """),
    "item": _list("""
        milk, eggs, bread, butter, cheese, yogurt, apples, bananas, oranges, grapes,
        strawberries, blueberries, raspberries, lemons, limes, avocados, tomatoes, potatoes,
        onions, garlic, carrots, celery, lettuce, spinach, kale, broccoli, cauliflower, cucumbers,
        peppers, mushrooms, zucchini, corn, peas, green beans, sweet potatoes, rice, pasta,
        noodles, flour, sugar, brown sugar, salt, pepper, olive oil, vegetable oil, vinegar,
        honey, maple syrup, peanut butter, jam, jelly, cereal, oatmeal, granola, coffee, tea,
        orange juice, apple juice, sparkling water, soda, beer, wine, chicken, chicken breasts,
        ground beef, steak, pork chops, bacon, sausage, ham, turkey, salmon, tuna, shrimp, tofu,
        beans, black beans, chickpeas, lentils, canned tomatoes, tomato sauce, soup, broth,
        crackers, chips, pretzels, popcorn, cookies, chocolate, ice cream, frozen pizza,
        frozen vegetables, frozen berries, tortillas, bagels, muffins, english muffins, croissants,
        sour cream, cream cheese, heavy cream, half and half, almond milk, oat milk, soy milk,
        mayonnaise, ketchup, mustard, hot sauce, soy sauce, salsa, hummus, pickles, olives,
        salad dressing, cinnamon, paprika, cumin, oregano, basil, parsley, cilantro, ginger,
        baking soda, baking powder, vanilla extract, yeast, nuts, almonds, walnuts, cashews,
        peanuts, raisins, dates, coconut milk, paper towels, toilet paper, tissues, napkins,
        trash bags, dish soap, dishwasher tablets, laundry detergent, fabric softener, bleach,
        sponges, aluminum foil, plastic wrap, sandwich bags, shampoo, conditioner, body wash,
        soap, toothpaste, toothbrushes, dental floss, deodorant, razors, shaving cream, sunscreen,
        lotion, cotton balls, band aids, pain relievers, vitamins, batteries, light bulbs,
        dog food, cat food, cat litter, dog treats, bird seed, diapers, baby wipes, baby food,
        formula, candles, matches, charcoal, flowers, birthday candles, wrapping paper, tape,
        printer paper, pens, pencils, notebooks, envelopes, stamps, glue, scissors, water bottles,
        ice, lemonade, iced tea, energy drinks, protein bars, granola bars, fruit snacks,
        applesauce, pudding, jello, whipped cream, marshmallows, graham crackers, sprinkles,
        cake mix, brownie mix, pancake mix, waffles, hot dogs, hamburger buns, hot dog buns,
        rolls, pita bread, naan, quinoa, couscous, barley, cornmeal, breadcrumbs, croutons,
        parmesan, mozzarella, cheddar, feta, goat cheese, swiss cheese, cottage cheese,
        pineapple, mango, peaches, pears, plums, cherries, watermelon, cantaloupe, kiwi,
        grapefruit, blackberries, cranberries, pomegranate, figs, asparagus, brussels sprouts,
        cabbage, radishes, beets, squash, pumpkin, eggplant, leeks, scallions, shallots, arugula
    """),
    "count_item": _list("""
        apples, bananas, oranges, lemons, limes, avocados, tomatoes, potatoes, onions, carrots,
        cucumbers, peppers, eggs, bagels, muffins, croissants, steaks, pork chops, chicken breasts,
        cans of soup, cans of beans, bottles of water, bottles of wine, cartons of milk,
        loaves of bread, bags of rice, boxes of cereal, boxes of pasta, jars of salsa,
        packs of gum, rolls of paper towels, rolls of toilet paper, bars of soap, light bulbs,
        batteries, candles, notebooks, pens, birthday cards, frozen pizzas, pints of ice cream,
        heads of lettuce, bunches of bananas, bags of chips, cans of cat food, cans of dog food,
        peaches, pears, mangoes, kiwis, grapefruits, sweet potatoes, zucchinis, tortillas
    """),
    "units_in": _list("""
        cups in a gallon, ounces in a pound, feet in a mile, inches in a foot, centimeters in an
        inch, grams in an ounce, teaspoons in a tablespoon, tablespoons in a cup, minutes in a day,
        seconds in an hour, days in a year, weeks in a year, hours in a week, pints in a quart,
        quarts in a gallon, milliliters in a cup, pounds in a kilogram, yards in a mile,
        meters in a kilometer, millimeters in an inch, ounces in a cup, cups in a liter,
        seconds in a day, days in a leap year, feet in a yard, acres in a square mile
    """),
    "conversion": _list("""
        cups to milliliters, miles to kilometers, kilometers to miles, pounds to kilograms,
        kilograms to pounds, ounces to grams, feet to meters, meters to feet, inches to
        centimeters, gallons to liters, liters to gallons, fahrenheit to celsius, celsius to
        fahrenheit, tablespoons to teaspoons, hours to minutes, minutes to seconds, days to hours,
        yards to meters, quarts to liters, dollars to euros, euros to dollars, pounds to dollars,
        dollars to yen, acres to hectares
    """),
    "word": _list("""
        necessary, restaurant, rhythm, separate, definitely, accommodate, conscience, embarrass,
        occurrence, privilege, recommend, schedule, maintenance, colonel, queue, wednesday,
        february, library, pronunciation, entrepreneur, bureaucracy, miscellaneous, onomatopoeia,
        serendipity, ephemeral, ubiquitous, quintessential, melancholy, nostalgia, resilience,
        empathy, paradigm, algorithm, photosynthesis, democracy, metaphor, irony, hypothesis,
        ambiguous, pragmatic, eloquent, meticulous, benevolent, gregarious, candid, diligent,
        frugal, lucid, mundane, obsolete, plausible, tenacious, vivid, whimsical, zealous,
        cat, dog, house, tree, water, friend, happy, thank you, hello, goodbye, please, love,
        beautiful, chocolate, vegetable, adventure, breakfast, umbrella, butterfly, elephant,
        giraffe, kangaroo, penguin, dinosaur, volcano, hurricane, tornado, galaxy, planet,
        mountain, ocean, island, desert, forest, river, bridge, castle, village, kitchen,
        window, bicycle, airplane, computer, telephone, camera, guitar, piano, violin, orchestra,
        symphony, festival, holiday, birthday, vacation, weekend, tomorrow, yesterday, beginning,
        knowledge, curiosity, imagination, courage, patience, gratitude, harmony, freedom,
        justice, wisdom, strength, balance, journey, moment, memory, silence, sunshine, rainbow
    """),
    "dish": _list("""
        pancakes, waffles, french toast, scrambled eggs, an omelet, banana bread, chocolate chip
        cookies, brownies, apple pie, pumpkin pie, cheesecake, lasagna, spaghetti and meatballs,
        mac and cheese, fried rice, chicken curry, beef stew, chili, tacos, enchiladas, burritos,
        guacamole, pad thai, ramen, sushi, dumplings, stir fry, roast chicken, meatloaf,
        mashed potatoes, potato salad, caesar salad, tomato soup, chicken noodle soup,
        clam chowder, risotto, paella, quiche, pizza dough, garlic bread, hummus, falafel,
        grilled cheese, pulled pork, fried chicken, salmon, shrimp scampi, chicken parmesan,
        beef tacos, vegetable soup, lemonade, hot chocolate, smoothies, granola, muffins,
        pot roast, shepherd's pie, fish and chips, carrot cake, tiramisu, gumbo, jambalaya
    """),
    "cuisine": _list("""
        italian, mexican, chinese, japanese, thai, indian, french, greek, korean, vietnamese,
        spanish, mediterranean, middle eastern, ethiopian, brazilian, american, southern,
        barbecue, seafood, sushi, pizza, burger, vegetarian, vegan, breakfast, steak, noodle,
        ramen, taco, coffee, ice cream
    """),
    "team": _list("""
        yankees, red sox, mets, dodgers, giants, cubs, white sox, cardinals, braves, astros,
        mariners, padres, rangers, blue jays, orioles, lakers, celtics, warriors, bulls, knicks,
        heat, nets, spurs, suns, bucks, raptors, clippers, mavericks, nuggets, patriots, cowboys,
        packers, steelers, eagles, chiefs, bears, forty niners, seahawks, broncos, dolphins,
        jets, ravens, saints, vikings, lions, browns, bengals, chargers, raiders, rams, bruins,
        penguins, canadiens, maple leafs, blackhawks, red wings, arsenal, chelsea, liverpool,
        manchester united, manchester city, tottenham, barcelona, real madrid, juventus
    """),
}
