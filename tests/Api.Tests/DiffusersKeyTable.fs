/// The state_dict of diffusers' UNet2DModel (key -> shape), written from diffusers' source, independently of our
/// exporter: models/unets/unet_2d.py (UNet2DModel.__init__: conv_in, time_embedding, down/mid/up blocks, conv_norm_out,
/// conv_out), unet_2d_blocks.py (DownBlock2D, AttnDownBlock2D, UNetMidBlock2D, AttnUpBlock2D, UpBlock2D: resnets,
/// attentions, downsamplers.0 / upsamplers.0), resnet.py (ResnetBlock2D: norm1, conv1, time_emb_proj, norm2, conv2,
/// conv_shortcut when in != out), attention_processor.py (Attention: group_norm, to_q, to_k, to_v, to_out.0 linear),
/// embeddings.py (TimestepEmbedding: linear_1, linear_2), downsampling.py / upsampling.py (3x3 conv named conv).
module DiffusionFunctional.Api.Tests.DiffusersKeyTable

/// The UNet2DModel arguments our named configurations imply (the rest are the defaults the exporter writes).
type UNet2DArgs = { InChannels: int; Widths: int list; Layers: int; Attention: bool list }

/// Our named models in diffusers' terms (UNetConfig.Named: channels = base * multiplier, attention levels).
let named =
    [ "tiny", { InChannels = 1; Widths = [ 8; 16 ]; Layers = 1; Attention = [ false; true ] }
      "small", { InChannels = 1; Widths = [ 32; 64; 64 ]; Layers = 1; Attention = [ false; false; true ] }
      "mnist", { InChannels = 1; Widths = [ 64; 128; 128 ]; Layers = 2; Attention = [ false; false; true ] }
      "base32", { InChannels = 3; Widths = [ 128; 256; 256; 256 ]; Layers = 2; Attention = [ false; true; false; false ] } ]

let private pair (name: string) (weight: int64 list) (bias: int64 list) = [ name + ".weight", weight; name + ".bias", bias ]

/// ResnetBlock2D(in_channels, out_channels, temb_channels).
let private resnet (p: string) (cin: int) (cout: int) (temb: int) =
    let cin, cout, temb = int64 cin, int64 cout, int64 temb
    [ yield! pair (p + ".norm1") [ cin ] [ cin ]
      yield! pair (p + ".conv1") [ cout; cin; 3L; 3L ] [ cout ]
      yield! pair (p + ".time_emb_proj") [ cout; temb ] [ cout ]
      yield! pair (p + ".norm2") [ cout ] [ cout ]
      yield! pair (p + ".conv2") [ cout; cout; 3L; 3L ] [ cout ]
      if cin <> cout then yield! pair (p + ".conv_shortcut") [ cout; cin; 1L; 1L ] [ cout ] ]

/// Attention(query_dim = c, heads * dim_head = c, norm_num_groups, bias=True): linear projections.
let private attention (p: string) (c: int) =
    let c = int64 c
    [ yield! pair (p + ".group_norm") [ c ] [ c ]
      for proj in [ "to_q"; "to_k"; "to_v"; "to_out.0" ] do yield! pair (p + "." + proj) [ c; c ] [ c ] ]

let private conv3 (p: string) (c: int) = pair (p + ".conv") [ int64 c; int64 c; 3L; 3L ] [ int64 c ]

/// The full key -> shape table of UNet2DModel for these arguments.
let expected (a: UNet2DArgs) : Map<string, int64 list> =
    let widths = Array.ofList a.Widths
    let n = widths.Length
    let w0 = widths.[0]
    let temb = 4 * w0  // time_embed_dim = block_out_channels[0] * 4
    let down =
        [ let mutable output = w0
          for i in 0 .. n - 1 do
              let input = output
              output <- widths.[i]
              for j in 0 .. a.Layers - 1 do
                  yield! resnet (sprintf "down_blocks.%d.resnets.%d" i j) (if j = 0 then input else output) output temb
                  if a.Attention.[i] then yield! attention (sprintf "down_blocks.%d.attentions.%d" i j) output
              if i < n - 1 then yield! conv3 (sprintf "down_blocks.%d.downsamplers.0" i) output ]
    let wl = widths.[n - 1]
    let mid =
        [ yield! resnet "mid_block.resnets.0" wl wl temb
          yield! attention "mid_block.attentions.0" wl
          yield! resnet "mid_block.resnets.1" wl wl temb ]
    let up =
        [ let reversed = Array.rev widths
          let mutable output = reversed.[0]
          for i in 0 .. n - 1 do
              let prev = output
              output <- reversed.[i]
              let input = reversed.[min (i + 1) (n - 1)]
              // num_layers = layers_per_block + 1; res_skip_channels = in_channels for the last, else out_channels
              for j in 0 .. a.Layers do
                  let resnetIn = if j = 0 then prev else output
                  let skip = if j = a.Layers then input else output
                  yield! resnet (sprintf "up_blocks.%d.resnets.%d" i j) (resnetIn + skip) output temb
                  if a.Attention.[n - 1 - i] then yield! attention (sprintf "up_blocks.%d.attentions.%d" i j) output
              if i < n - 1 then yield! conv3 (sprintf "up_blocks.%d.upsamplers.0" i) output ]
    [ yield! pair "conv_in" [ int64 w0; int64 a.InChannels; 3L; 3L ] [ int64 w0 ]
      yield! pair "time_embedding.linear_1" [ int64 temb; int64 w0 ] [ int64 temb ]
      yield! pair "time_embedding.linear_2" [ int64 temb; int64 temb ] [ int64 temb ]
      yield! down
      yield! mid
      yield! up
      yield! pair "conv_norm_out" [ int64 w0 ] [ int64 w0 ]
      yield! pair "conv_out" [ int64 a.InChannels; int64 w0; 3L; 3L ] [ int64 a.InChannels ] ]
    |> Map.ofList

/// The tiny model's table spelled out (144 keys), a spot check of `expected` that needs no loop reading.
let tinyLiteral =
    """
conv_in 8,1,3,3 8
time_embedding.linear_1 32,8 32
time_embedding.linear_2 32,32 32
down_blocks.0.resnets.0.norm1 8 8
down_blocks.0.resnets.0.conv1 8,8,3,3 8
down_blocks.0.resnets.0.time_emb_proj 8,32 8
down_blocks.0.resnets.0.norm2 8 8
down_blocks.0.resnets.0.conv2 8,8,3,3 8
down_blocks.0.downsamplers.0.conv 8,8,3,3 8
down_blocks.1.attentions.0.group_norm 16 16
down_blocks.1.attentions.0.to_q 16,16 16
down_blocks.1.attentions.0.to_k 16,16 16
down_blocks.1.attentions.0.to_v 16,16 16
down_blocks.1.attentions.0.to_out.0 16,16 16
down_blocks.1.resnets.0.norm1 8 8
down_blocks.1.resnets.0.conv1 16,8,3,3 16
down_blocks.1.resnets.0.time_emb_proj 16,32 16
down_blocks.1.resnets.0.norm2 16 16
down_blocks.1.resnets.0.conv2 16,16,3,3 16
down_blocks.1.resnets.0.conv_shortcut 16,8,1,1 16
up_blocks.0.attentions.0.group_norm 16 16
up_blocks.0.attentions.0.to_q 16,16 16
up_blocks.0.attentions.0.to_k 16,16 16
up_blocks.0.attentions.0.to_v 16,16 16
up_blocks.0.attentions.0.to_out.0 16,16 16
up_blocks.0.attentions.1.group_norm 16 16
up_blocks.0.attentions.1.to_q 16,16 16
up_blocks.0.attentions.1.to_k 16,16 16
up_blocks.0.attentions.1.to_v 16,16 16
up_blocks.0.attentions.1.to_out.0 16,16 16
up_blocks.0.resnets.0.norm1 32 32
up_blocks.0.resnets.0.conv1 16,32,3,3 16
up_blocks.0.resnets.0.time_emb_proj 16,32 16
up_blocks.0.resnets.0.norm2 16 16
up_blocks.0.resnets.0.conv2 16,16,3,3 16
up_blocks.0.resnets.0.conv_shortcut 16,32,1,1 16
up_blocks.0.resnets.1.norm1 24 24
up_blocks.0.resnets.1.conv1 16,24,3,3 16
up_blocks.0.resnets.1.time_emb_proj 16,32 16
up_blocks.0.resnets.1.norm2 16 16
up_blocks.0.resnets.1.conv2 16,16,3,3 16
up_blocks.0.resnets.1.conv_shortcut 16,24,1,1 16
up_blocks.0.upsamplers.0.conv 16,16,3,3 16
up_blocks.1.resnets.0.norm1 24 24
up_blocks.1.resnets.0.conv1 8,24,3,3 8
up_blocks.1.resnets.0.time_emb_proj 8,32 8
up_blocks.1.resnets.0.norm2 8 8
up_blocks.1.resnets.0.conv2 8,8,3,3 8
up_blocks.1.resnets.0.conv_shortcut 8,24,1,1 8
up_blocks.1.resnets.1.norm1 16 16
up_blocks.1.resnets.1.conv1 8,16,3,3 8
up_blocks.1.resnets.1.time_emb_proj 8,32 8
up_blocks.1.resnets.1.norm2 8 8
up_blocks.1.resnets.1.conv2 8,8,3,3 8
up_blocks.1.resnets.1.conv_shortcut 8,16,1,1 8
mid_block.attentions.0.group_norm 16 16
mid_block.attentions.0.to_q 16,16 16
mid_block.attentions.0.to_k 16,16 16
mid_block.attentions.0.to_v 16,16 16
mid_block.attentions.0.to_out.0 16,16 16
mid_block.resnets.0.norm1 16 16
mid_block.resnets.0.conv1 16,16,3,3 16
mid_block.resnets.0.time_emb_proj 16,32 16
mid_block.resnets.0.norm2 16 16
mid_block.resnets.0.conv2 16,16,3,3 16
mid_block.resnets.1.norm1 16 16
mid_block.resnets.1.conv1 16,16,3,3 16
mid_block.resnets.1.time_emb_proj 16,32 16
mid_block.resnets.1.norm2 16 16
mid_block.resnets.1.conv2 16,16,3,3 16
conv_norm_out 8 8
conv_out 1,8,3,3 1
"""
    |> fun text -> text.Split('\n', System.StringSplitOptions.RemoveEmptyEntries)
    |> Array.collect (fun line ->
        let parts = line.Split ' '
        let shape (s: string) = s.Split ',' |> Array.map int64 |> List.ofArray
        [| parts.[0] + ".weight", shape parts.[1]; parts.[0] + ".bias", shape parts.[2] |])
    |> Map.ofArray
